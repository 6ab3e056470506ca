"""VMCOREINFO values a damaged dump or guest RAM can hold: a bad number is
the one-line error naming its key, never a bare ValueError (found by
tests/fuzz/fuzz_vmcoreinfo.py)."""
import pytest

from pfnscope.errors import LayoutError
from pfnscope.vmcoreinfo import VmcoreInfo

GOOD = "OSRELEASE=6.1.0-56-amd64\nKERNELOFFSET=35e00000\nNUMBER(phys_base)=-8000000\n"


@pytest.mark.parametrize("line,call,key", [
    ("SIZE(page)=1e9", lambda i: i.size("page"), "SIZE(page)"),
    ("LENGTH(mem_section)=", lambda i: i.length("mem_section"), "LENGTH(mem_section)"),
    ("OFFSET(page.flags)=zz", lambda i: i.offset("page.flags"), "OFFSET(page.flags)"),
    ("SYMBOL(init_top_pgt)=xyz", lambda i: i.symbol("init_top_pgt"), "SYMBOL(init_top_pgt)"),
    ("NUMBER(SECTION_SIZE_BITS)=0x", lambda i: i.number("SECTION_SIZE_BITS"), "NUMBER(SECTION_SIZE_BITS)"),
    ("KERNELOFFSET=\xff\xfe", lambda i: i.kaslr_offset, "KERNELOFFSET"),
    ("NUMBER(pgtable_l5_enabled)=-", lambda i: i.pgtable_levels, "NUMBER(pgtable_l5_enabled)"),
])
def test_bad_number_names_key(line, call, key):
    info = VmcoreInfo(GOOD + line + "\n")
    with pytest.raises(LayoutError) as ei:
        call(info)
    msg = str(ei.value)
    assert msg.startswith("VMCOREINFO: ") and key in msg and "\n" not in msg


def test_good_numbers():
    info = VmcoreInfo(GOOD + "SIZE(page)=64\nNUMBER(x)=0x10\n")
    assert info.kaslr_offset == 0x35e00000
    assert info.number("phys_base") == -8000000  # %ld: decimal
    assert info.size("page") == 64 and info.number("x") == 16
