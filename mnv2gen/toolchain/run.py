"""Running built programs (QEMU with semihosting, or natively) and size reports."""

from __future__ import annotations

import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mnv2gen.errors import MnvError
from mnv2gen.toolchain.build import require, run_tool
from mnv2gen.toolchain.targets import ICOUNT_SHIFT, Target, as_target

#: Exit status of a Cortex-M run that ended in a fault (MNV2_FAULT_EXIT_CODE in C).
FAULT_EXIT_CODE = 127


@dataclass(frozen=True)
class RunResult:
    """What one run produced. exit_code is None when it timed out, negative when QEMU
    died from a signal (e.g. -6 after a "Lockup": a fault inside the fault handler)."""

    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool

    @property
    def faulted(self) -> bool:
        """Return True when the run ended in a fault (harness report or QEMU lockup)."""
        return self.exit_code == FAULT_EXIT_CODE or "qemu: fatal: Lockup" in self.stderr


def qemu_command(target: Target, elf: str | Path, icount: bool = True) -> list[str]:
    """Return the QEMU command line that runs `elf` on `target` (for logs and scripts)."""
    cmd = ["qemu-system-arm", "-M", target.qemu_machine, *target.qemu_args, "-nographic",
           "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)]
    return [*cmd, "-icount", f"shift={ICOUNT_SHIFT},sleep=off"] if icount else cmd


def run_elf(target: Target | str, elf: str | Path, timeout_s: float = 60.0,
            icount: bool = True, cwd: str | Path | None = None) -> RunResult:
    """Run a built program (under QEMU for Cortex-M, directly for host); return its RunResult.

    stdin is /dev/null. The exit code is the program's exit status (under QEMU the
    semihosting exit status & 0xFF); FAULT_EXIT_CODE means the harness caught a fault, whose
    one-line report is in stderr. Program output (printf) is in stdout.
    icount=False runs QEMU about 5x faster, but mnv2_counter_stop() then measures host
    time, not instructions: use it for functional checks only. `cwd`: the folder the
    program's relative semihosting file names are opened in.
    """
    target = as_target(target)
    elf = Path(elf).resolve()
    if target.is_host:
        cmd = [str(elf)]
    else:
        require(target, "qemu")
        cmd = qemu_command(target, elf, icount)
    try:
        done = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL,
                              timeout=timeout_s, cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        return RunResult(None, _text(exc.stdout), _text(exc.stderr), True)
    return RunResult(done.returncode, _text(done.stdout), _text(done.stderr), False)


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", errors="replace")


def size_report(target: Target | str, elf: str | Path) -> dict:
    """Return {"text", "data", "bss"} in bytes as `size` reports them and, for Cortex-M
    targets, "regions": {region name: bytes used} (FLASH counts .data's load image too).
    bss and RAM include the harness heap and stack."""
    target = as_target(target)
    tool = require(target, "size")
    berkeley = run_tool([tool, str(elf)], f"{tool} {Path(elf).name}")
    if berkeley.returncode != 0:
        raise MnvError(f"{tool} cannot read {Path(elf).name}: {berkeley.stderr.strip()[:200]}")
    text, data, bss = (int(v) for v in berkeley.stdout.splitlines()[1].split()[:3])
    report: dict = {"text": text, "data": data, "bss": bss}
    if target.is_host:
        return report
    used = {r.name: 0 for r in target.regions}
    for addr, size in _alloc_sections(Path(elf)):
        for r in target.regions:
            if r.origin <= addr < r.origin + r.size_bytes:
                used[r.name] += size
    used["FLASH"] += data
    report["regions"] = used
    return report


def _alloc_sections(elf: Path) -> list[tuple[int, int]]:
    """Return (address, size) of every allocated section of a 32-bit little-endian ELF."""
    raw = elf.read_bytes()
    (shoff,) = struct.unpack_from("<I", raw, 0x20)
    shentsize, shnum = struct.unpack_from("<HH", raw, 0x2E)
    sections = []
    for i in range(shnum):
        _, _, flags, addr, _, size = struct.unpack_from("<6I", raw, shoff + i * shentsize)
        if flags & 0x2 and size:  # SHF_ALLOC
            sections.append((addr, size))
    return sections
