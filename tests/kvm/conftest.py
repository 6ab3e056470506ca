"""pytest glue for the nested-KVM lab: fixtures are built (once, cached under
$PFNSCOPE_CACHE/kvm/lab) when a test first asks for them; a failed build fails
the tests that need it, never skips them."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for p in (ROOT, os.path.join(ROOT, "src", "python")):
    if p not in sys.path:
        sys.path.insert(0, p)
