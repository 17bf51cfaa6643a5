"""Message handlers, one router per topic; the catch-all `unsupported` router is included last."""
