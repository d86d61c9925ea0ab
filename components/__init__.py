"""One ComponentResource per thing deployed. Components wire resources from typed specs;
the decisions (placement, capacity, rendered files) are made in `swarm/` beforehand."""
