#!/usr/bin/python3
"""tests/lib/smoke.py - libvmm from Python through ctypes (standard library
only): create, start and wait for one VM booting the test kernel; read its
console and events.  Run by tests/integration/lib-python.sh.

    smoke.py LIBVMM_SO TESTKERNEL
"""
import ctypes
import errno
import json
import os
import sys


def main():
    lib = ctypes.CDLL(sys.argv[1], use_errno=True)
    kernel = sys.argv[2].encode()
    lib.vmm_config_new.restype = ctypes.c_void_p
    lib.vmm_config_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
    lib.vmm_config_error.argtypes = [ctypes.c_void_p]
    lib.vmm_config_error.restype = ctypes.c_char_p
    lib.vmm_config_free.argtypes = [ctypes.c_void_p]
    lib.vmm_create.argtypes = [ctypes.c_void_p]
    lib.vmm_create.restype = ctypes.c_void_p
    lib.vmm_error.argtypes = [ctypes.c_void_p]
    lib.vmm_error.restype = ctypes.c_char_p
    for f in ("vmm_start", "vmm_stop", "vmm_console_fd", "vmm_event_fd"):
        getattr(lib, f).argtypes = [ctypes.c_void_p]
    lib.vmm_wait.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.vmm_destroy.argtypes = [ctypes.c_void_p]
    lib.vmm_version.restype = ctypes.c_char_p

    cfg = lib.vmm_config_new()
    assert cfg
    for opt, val in ((b"kernel", kernel), (b"memory", b"size=32M"),
                     (b"cmdline", b"vmmtest.run=hello marker=from-python"),
                     (b"timeout", b"120")):
        r = lib.vmm_config_set(cfg, opt, val)
        assert r == 0, lib.vmm_config_error(cfg)
    r = lib.vmm_config_set(cfg, b"no-such-option", b"1")
    assert r == -errno.EINVAL, r
    assert b"unknown option" in lib.vmm_config_error(cfg)

    vm = lib.vmm_create(cfg)
    lib.vmm_config_free(cfg)
    assert vm, lib.vmm_error(None)
    assert lib.vmm_start(vm) == 0, lib.vmm_error(vm)
    # the console socket, to end-of-file (the VM has stopped by then)
    with os.fdopen(os.dup(lib.vmm_console_fd(vm)), "rb") as con:
        console = con.read().decode(errors="replace")
    status = lib.vmm_wait(vm, 60000)
    with os.fdopen(os.dup(lib.vmm_event_fd(vm)), "r") as ev:
        events = [json.loads(line) for line in ev]
    lib.vmm_destroy(vm)

    assert status == 0, (status, console)
    assert "PASS hello" in console and "marker=from-python" in console, console
    kinds = [e["event"] for e in events]
    assert kinds[0] == "boot-ready" and kinds[-1] == "exit", events
    assert events[-1]["status"] == 0 and events[-1]["reason"] == "guest", events
    assert events[0]["wall_ms"] > 0, events
    print("smoke.py: libvmm %s from Python: status %d, %d events, boot-ready at %.1f ms"
          % (lib.vmm_version().decode(), status, len(events), events[0]["wall_ms"]))


if __name__ == "__main__":
    main()
