# filled by the lab area
.PHONY: lab check-lab demo
check-lab:
