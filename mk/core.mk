# filled by the core area
.PHONY: core check-core
core:
check-core:
