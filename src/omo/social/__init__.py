"""Social: friends ' labels and remarks, Moments (posts, likes, comments, shares)."""
