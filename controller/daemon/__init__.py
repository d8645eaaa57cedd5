"""The node daemon (``relieve serve``) and its clients."""
