"""Mini programs: packages, versions, launch by QR with a scene, the developer API."""
