# filled by the python area
.PHONY: python check-python
python:
check-python:
