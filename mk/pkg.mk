# Packages: a wheel with the C extension (pip, no index) and the Debian package
# (debian/, dpkg-buildpackage), both built from a copy of the tree under
# build/.  Their tests (in check-python): tests/python/test_packages.py (the
# wheel, and the .deb installed by apt in a clean bookworm chroot,
# tests/pkg/deb-install.sh) and tests/python/test_drgn_generations.py (drgn
# 0.0.22 on the host, trixie's and sid's drgn in the lab chroots,
# tests/drgn/provision.sh).
.PHONY: wheel deb check-pkg
PKG_INPUTS := setup.py README.md include src plugins debian $(wildcard docs/pfnscope.1)
PKG_VERSION = $(shell dpkg-parsechangelog -l debian/changelog -S Version)

define pkg_copy # DEST: the tree's package inputs without build products
	rm -rf $(1) && mkdir -p $(1)
	tar -c --exclude='*.so' --exclude='*.pyc' --exclude=__pycache__ --exclude='*.egg-info' \
	  $(PKG_INPUTS) | tar -x -C $(1)
endef

wheel:
	$(call pkg_copy,$(BUILD)/wheel/src)
	$(PYTHON) -m pip wheel -q --no-deps --no-build-isolation --no-index -w $(BUILD)/wheel $(BUILD)/wheel/src
	@ls $(BUILD)/wheel/*.whl

deb: deps
	$(call pkg_copy,$(BUILD)/deb/pfnscope-$(PKG_VERSION))
	cd $(BUILD)/deb/pfnscope-$(PKG_VERSION) && dpkg-buildpackage -us -uc -b
	@ls $(BUILD)/deb/*.deb

check-pkg: python
	PYTHONPATH=$(CURDIR)/src/python $(PYTHON) -m pytest -q tests/python/test_packages.py \
	  tests/python/test_drgn_generations.py
