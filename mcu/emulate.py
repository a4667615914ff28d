"""Runs the lock image (mcu/, a Cortex-M4 ELF) in unicorn on the inputs of
`cargo run -p door-protocol --example mcu_inputs`, and prints, per phase: instructions
executed, the time that makes at the stated clock and cycles per instruction, heap and stack
high-water marks, and whether the lock's reply equalled the host's. Also the image's flash
and static RAM from its section headers. Called by scripts/bench-mcu.

    emulate.py IMAGE INPUTS [--footprint LOCK_IMAGE] [--title TITLE] [--json OUT]

IMAGE is run; the flash and static RAM are LOCK_IMAGE's (default IMAGE): the lock image built
without the comparison library, as a lock would ship it.
"""
import json
import struct
import sys

from unicorn import (UC_ARCH_ARM, UC_HOOK_BLOCK, UC_HOOK_MEM_WRITE, UC_MODE_MCLASS,
                     UC_MODE_THUMB, Uc)
from unicorn.arm_const import UC_ARM_REG_SP

FLASH, FLASH_SIZE = 0x0000_0000, 1024 * 1024
RAM, RAM_SIZE = 0x2000_0000, 512 * 1024
REPORT, INPUTS = 0x4000_0000, 0x6000_0000
# The system control block, which cortex-m-rt's reset code writes to turn the FPU on.
SYSTEM = 0xE000_0000
PAINT = 0xA5
# The clock and cycles per instruction the times are stated at. 64 MHz: the nRF52840's clock
# and a common STM32L4/G4 setting. CPI 1.4: P256-Cortex-M4's published cycle counts on an
# nRF52840 at 64 MHz (ICACHE on: verify 976k, ECDH 906k, sign 375k cycles) divided by the
# instructions this emulator counts for the same operations in this image (the
# "p256-cortex-m4" rows) give 1.37 to 1.39, and RustCrypto's big-number code is the same kind
# of work (multiply-accumulate, loads, stores, short loops). The Cortex-M4 executes data
# processing and UMULL/UMLAL in one cycle, a load in two (one behind another), a taken branch
# in two to four, and flash at 64 MHz adds wait states a cache hides only partly. The
# instruction counts are exact; the times are as good as this factor.
CLOCK_HZ = 64_000_000
CPI = 1.4


def elf_sections(image):
    """(name, flags, type, addr, size) of every section, from an ELF32 little-endian file."""
    shoff, = struct.unpack_from("<I", image, 0x20)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", image, 0x2E)
    headers = [struct.unpack_from("<IIIIIIIIII", image, shoff + i * shentsize) for i in range(shnum)]
    strtab = headers[shstrndx][4]
    def name(off):
        end = image.index(b"\0", strtab + off)
        return image[strtab + off:end].decode()
    return [(name(h[0]), h[2], h[1], h[3], h[5]) for h in headers]


def elf_segments(image):
    """(physical address, bytes) of every PT_LOAD segment: what goes into flash."""
    phoff, = struct.unpack_from("<I", image, 0x1C)
    phentsize, phnum = struct.unpack_from("<HH", image, 0x2A)
    out = []
    for i in range(phnum):
        p_type, off, _vaddr, paddr, filesz, _memsz, _flags, _align = struct.unpack_from(
            "<IIIIIIII", image, phoff + i * phentsize)
        if p_type == 1 and filesz:
            out.append((paddr, image[off:off + filesz]))
    return out


def footprint(image):
    """Flash (.vector_table, .text, .rodata, the .data image) and static RAM (.data, .bss,
    .uninit) in bytes, as `size -A` would add them up."""
    SHF_WRITE, SHF_ALLOC, SHT_NOBITS = 0x1, 0x2, 8
    flash = ram = 0
    parts = {}
    for name, flags, kind, addr, size in elf_sections(image):
        if not flags & SHF_ALLOC or size == 0:
            continue
        parts[name] = size
        if kind != SHT_NOBITS:
            flash += size
        if flags & SHF_WRITE:
            ram += size
    return flash, ram, parts


class Emulator:
    def __init__(self, image, inputs):
        self.uc = uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        uc.mem_map(FLASH, FLASH_SIZE)
        uc.mem_map(RAM, RAM_SIZE)
        uc.mem_map(REPORT, 0x1000)
        uc.mem_map(SYSTEM, 0x10_0000)
        uc.mem_map(INPUTS, (len(inputs) + 4 + 0xFFF) & ~0xFFF)
        for addr, data in elf_segments(image):
            uc.mem_write(addr, data)
        uc.mem_write(INPUTS, struct.pack("<I", len(inputs)) + inputs)
        uc.mem_write(RAM, bytes([PAINT]) * RAM_SIZE)
        self.sp, self.reset = struct.unpack("<II", bytes(uc.mem_read(FLASH, 8)))
        self.instructions = 0
        self.block_sizes = {}
        self.phases = []
        self.heap_end = None
        self.name_address = None
        self.finished = False
        self.panic_line = None
        uc.hook_add(UC_HOOK_BLOCK, self.on_block)
        uc.hook_add(UC_HOOK_MEM_WRITE, self.on_report, begin=REPORT, end=REPORT + 0xFFF)

    def on_block(self, uc, address, size, _):
        # Instructions in the block: Thumb-2 halfwords starting 0b11101, 0b11110 or 0b11111
        # open a 32-bit instruction, any other a 16-bit one. Cached per block.
        count = self.block_sizes.get((address, size))
        if count is None:
            code = bytes(uc.mem_read(address, size))
            count, i = 0, 0
            while i < size:
                half, = struct.unpack_from("<H", code, i)
                i += 4 if (half >> 11) in (0b11101, 0b11110, 0b11111) else 2
                count += 1
            self.block_sizes[(address, size)] = count
        self.instructions += count

    def on_report(self, uc, _access, address, _size, value, _):
        register = address - REPORT
        if register == 0x18:
            self.heap_end = value
        elif register == 0x1C:
            self.name_address = value
        elif register == 0x28:
            name = bytes(uc.mem_read(self.name_address, value)).decode()
            self.phases.append({"name": name})
        elif register == 0x08:
            self.phases[-1]["heap_at_start"] = value
        elif register == 0x00:
            phase = self.phases[-1]
            phase["start"] = self.instructions
            sp = uc.reg_read(UC_ARM_REG_SP)
            phase["sp_at_start"] = sp
            # Paint the free stack, so its lowest touched byte shows at the phase's end.
            uc.mem_write(self.heap_end, bytes([PAINT]) * (sp - 64 - self.heap_end))
        elif register == 0x04:
            phase = self.phases[-1]
            phase["instructions"] = self.instructions - phase["start"]
            phase["stack_peak"] = RAM + RAM_SIZE - self.lowest_touched_stack()
        elif register == 0x0C:
            self.phases[-1]["heap_peak"] = value
        elif register == 0x10:
            self.phases[-1]["heap_at_end"] = value
        elif register == 0x14:
            self.phases[value >> 1]["matched"] = bool(value & 1)
        elif register == 0x20:
            self.finished = True
            uc.emu_stop()
        elif register == 0x24:
            self.panic_line = value
            uc.emu_stop()

    def lowest_touched_stack(self):
        stack = bytes(self.uc.mem_read(self.heap_end, RAM + RAM_SIZE - self.heap_end))
        untouched = len(stack) - len(stack.lstrip(bytes([PAINT])))
        return self.heap_end + untouched

    def run(self):
        from unicorn.arm_const import UC_ARM_REG_MSP
        self.uc.reg_write(UC_ARM_REG_MSP, self.sp)
        self.uc.reg_write(UC_ARM_REG_SP, self.sp)
        self.uc.emu_start(self.reset | 1, FLASH + FLASH_SIZE)
        if self.panic_line is not None:
            raise SystemExit(f"the image panicked (src line {self.panic_line})")
        if not self.finished:
            raise SystemExit("the image stopped before reporting done")


def kb(n):
    return f"{n / 1024:.1f} KB"


def table(result):
    """The report as markdown: one row per phase, then the image's footprint."""
    rows = [
        f"{result['title']}: Cortex-M4 (thumbv7em-none-eabihf, release: opt-level s, LTO), "
        f"emulated by unicorn; times at {CLOCK_HZ // 1_000_000} MHz and {CPI} cycles per "
        "instruction.",
        "",
        "| lock's work | instructions | ms at 64 MHz | heap peak (above start) | heap held after | stack peak | reply as on host |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in result["phases"]:
        ms = p["instructions"] * CPI / CLOCK_HZ * 1000
        rows.append(
            f"| {p['name']} | {p['instructions'] / 1e6:.2f} M | {ms:.0f} | {kb(p['heap_peak'])} "
            f"({kb(p['heap_peak'] - p['heap_at_start'])}) | {kb(p['heap_at_end'])} | "
            f"{kb(p['stack_peak'])} | {'yes' if p['matched'] else 'NO'} |")
    heap_peak = max(p["heap_peak"] for p in result["phases"])
    stack_peak = max(p["stack_peak"] for p in result["phases"])
    s = result["sections"]
    rows += [
        "",
        f"{result['image']}: flash {kb(result['flash'])} (.text {kb(s.get('.text', 0))}, .rodata "
        f"{kb(s.get('.rodata', 0))}, vector table and .data image the rest); RAM: static "
        f"{result['static_ram']} bytes (.data, .bss), stack peak {kb(stack_peak)}, heap peak "
        f"{kb(heap_peak)}: {kb(result['static_ram'] + stack_peak + heap_peak)} at most.",
    ]
    return "\n".join(rows)


def main():
    image = open(sys.argv[1], "rb").read()
    inputs = open(sys.argv[2], "rb").read()
    emulator = Emulator(image, inputs)
    emulator.run()
    lock_image = image
    if "--footprint" in sys.argv:
        lock_image = open(sys.argv[sys.argv.index("--footprint") + 1], "rb").read()
    flash, ram, parts = footprint(lock_image)
    image_name = "Lock image"
    if "--footprint" in sys.argv:
        image_name = "Lock image as shipped (built without the comparison rows' library)"
    title = sys.argv[sys.argv.index("--title") + 1] if "--title" in sys.argv else "Lock image"
    result = {"title": title, "image": image_name, "clock_hz": CLOCK_HZ, "cpi": CPI, "flash": flash, "static_ram": ram,
              "sections": parts, "phases": emulator.phases}
    if "--json" in sys.argv:
        json.dump(result, open(sys.argv[sys.argv.index("--json") + 1], "w"), indent=1)
    print(table(result))
    if not all(p.get("matched") for p in emulator.phases):
        raise SystemExit("a phase's reply differed from the host's")


if __name__ == "__main__":
    main()
