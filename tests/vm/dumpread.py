"""Minimal ctypes binding of libkdumpfile (libkdumpfile.so.10) for the lab tests:
open a dump file and read physical memory.

    with KdumpFile(path) as d:          # arch/ostype set when the dump lacks them
        data = d.read_phys(pfn << 12, 4096)   # raises NoData for filtered-out pages
"""
import ctypes
import os

KDUMP_OK = 0
KDUMP_ERR_NODATA = 3  # enum order: OK, ERR_SYSTEM, ERR_NOTIMPL, ERR_NODATA, ...
KDUMP_NIL, KDUMP_DIRECTORY, KDUMP_NUMBER, KDUMP_ADDRESS, KDUMP_STRING = range(5)
KDUMP_KPHYSADDR, KDUMP_MACHPHYSADDR, KDUMP_KVADDR = 0, 1, 2


class _Val(ctypes.Union):
    _fields_ = [("number", ctypes.c_uint64), ("address", ctypes.c_uint64),
                ("string", ctypes.c_char_p), ("ptr", ctypes.c_void_p)]


class _Attr(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("val", _Val)]


_lib = None


def lib():
    global _lib
    if _lib is None:
        l = ctypes.CDLL("libkdumpfile.so.10")
        l.kdump_new.restype = ctypes.c_void_p
        l.kdump_free.argtypes = [ctypes.c_void_p]
        l.kdump_get_err.restype = ctypes.c_char_p
        l.kdump_get_err.argtypes = [ctypes.c_void_p]
        l.kdump_open_fdset.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.POINTER(ctypes.c_int)]
        l.kdump_set_attr.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(_Attr)]
        l.kdump_get_attr.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(_Attr)]
        l.kdump_read.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64,
                                 ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)]
        _lib = l
    return _lib


class KdumpError(Exception):
    pass


class NoData(KdumpError):
    """The page is not stored in the dump (filtered out)."""


class KdumpFile:
    def __init__(self, path, arch="x86_64", ostype="linux"):
        self.path = path
        l = lib()
        self.ctx = l.kdump_new()
        if not self.ctx:
            raise KdumpError("kdump_new failed")
        self.fd = os.open(path, os.O_RDONLY)
        fds = (ctypes.c_int * 1)(self.fd)
        st = l.kdump_open_fdset(self.ctx, 1, fds)
        if st != KDUMP_OK:
            self._raise("open %s" % path, st)
        # QEMU's kdump-zlib header carries no arch name: set it (and the OS type)
        if arch and not self.get_string("arch.name"):
            self.set_string("arch.name", arch)
        if ostype and not self.get_string("addrxlat.ostype"):
            self.set_string("addrxlat.ostype", ostype)

    def _raise(self, what, st):
        err = lib().kdump_get_err(self.ctx)
        msg = "%s: %s (status %d)" % (what, err.decode(errors="replace") if err else "?", st)
        if st == KDUMP_ERR_NODATA or (err and b"not stored" in err.lower()) or (err and b"excluded" in err.lower()):
            raise NoData(msg)
        raise KdumpError(msg)

    def get_string(self, key):
        a = _Attr()
        st = lib().kdump_get_attr(self.ctx, key.encode(), ctypes.byref(a))
        if st != KDUMP_OK or a.type != KDUMP_STRING or not a.val.string:
            return None
        return a.val.string.decode()

    def get_number(self, key):
        a = _Attr()
        st = lib().kdump_get_attr(self.ctx, key.encode(), ctypes.byref(a))
        if st != KDUMP_OK or a.type not in (KDUMP_NUMBER, KDUMP_ADDRESS):
            return None
        return a.val.number

    def set_string(self, key, value):
        self._keep = getattr(self, "_keep", []) + [value.encode()]
        a = _Attr(KDUMP_STRING, _Val(string=self._keep[-1]))
        st = lib().kdump_set_attr(self.ctx, key.encode(), ctypes.byref(a))
        if st != KDUMP_OK:
            self._raise("set %s=%s" % (key, value), st)

    def read(self, addrspace, addr, length):
        buf = ctypes.create_string_buffer(length)
        n = ctypes.c_size_t(length)
        st = lib().kdump_read(self.ctx, addrspace, addr, buf, ctypes.byref(n))
        if st != KDUMP_OK:
            self._raise("read %#x+%d" % (addr, length), st)
        return buf.raw[:n.value]

    def read_phys(self, addr, length):
        return self.read(KDUMP_MACHPHYSADDR, addr, length)

    def close(self):
        if self.ctx:
            lib().kdump_free(self.ctx)
            self.ctx = None
            os.close(self.fd)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def elf_load_segments(path):
    """[(paddr, file_offset, filesz)] of an ELF64 core's PT_LOAD headers."""
    import struct
    segs = []
    with open(path, "rb") as f:
        eh = f.read(64)
        if eh[:4] != b"\x7fELF" or eh[4] != 2:
            raise ValueError("%s: not an ELF64 file" % path)
        phoff, = struct.unpack_from("<Q", eh, 32)
        phentsize, phnum = struct.unpack_from("<HH", eh, 54)
        if phnum == 0xFFFF:  # extended numbering: real count in section 0's sh_info
            shoff, = struct.unpack_from("<Q", eh, 40)
            f.seek(shoff + 44)
            phnum, = struct.unpack("<I", f.read(4))
        f.seek(phoff)
        for _ in range(phnum):
            ph = f.read(phentsize)
            p_type, _flags, p_offset, _vaddr, p_paddr, p_filesz = struct.unpack_from("<IIQQQQ", ph)
            if p_type == 1 and p_filesz:
                segs.append((p_paddr, p_offset, p_filesz))
    return segs


def elf_find_phys(path, needle, limit=8):
    """Physical addresses where NEEDLE occurs in an ELF core (paging=false dump)."""
    import mmap
    out = []
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
        try:
            for paddr, off, size in elf_load_segments(path):
                pos = off
                while len(out) < limit:
                    i = mm.find(needle, pos, off + size)
                    if i < 0:
                        break
                    out.append(paddr + (i - off))
                    pos = i + 1
        finally:
            mm.close()
    return out
