"""Customer care: the brand's team inbox, assignment, notes, search, SLA and CSAT."""
