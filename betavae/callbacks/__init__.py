"""Lightning callbacks: when and where only; what they draw or score lives in `betavae.figures` and
`betavae.metrics`."""
