"""Alert channels: one module per channel behind one interface."""
