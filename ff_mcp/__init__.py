"""ff-mcp: Forward-Forward learning with a PyTorch engine, an MCP tool server, deterministic
colors and GF(3) triads, and a Clojure bridge."""

__version__ = "0.1.0"
