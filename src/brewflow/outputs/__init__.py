"""What a run hands over: plots, cutflow tables, fit inputs, the summary pages and status."""
