"""Lightning callbacks: each decides when to call `betavae` for a figure or metric, and where the result goes."""
