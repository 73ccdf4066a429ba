"""What a run costs: FLOPs, realised throughput, hardware, memory, hours, plans and projections."""
