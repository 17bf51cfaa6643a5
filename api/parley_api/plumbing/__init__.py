"""What every feature stands on and nothing owns: the server, the middleware, metrics, rate limits."""
