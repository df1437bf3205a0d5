#!/usr/bin/env bash
# Regenerate the G.711 reference vectors in codecs/g711/ with sox.
# See codecs/README.md for what each file holds and why sox is the reference.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/g711"
mkdir -p "$out"

command -v sox >/dev/null || { echo "make-vectors.sh: sox is not installed (apt-get install sox)" >&2; exit 1; }

# Input ramp: every int16 value once, -32768 up to 32767, little-endian.
python3 -c 'import struct, sys; sys.stdout.buffer.write(struct.pack("<65536h", *range(-32768, 32768)))' \
    > "$out/ramp.s16"
# Every 8-bit code once, 0 up to 255.
python3 -c 'import sys; sys.stdout.buffer.write(bytes(range(256)))' > "$out/codes.u8"

# -D: no dither, so the output is the plain encoder/decoder.
s16=(-t raw -e signed-integer -b 16 -L -c 1 -r 8000)
ulaw=(-t raw -e u-law -b 8 -c 1 -r 8000)
alaw=(-t raw -e a-law -b 8 -c 1 -r 8000)

sox -V1 -D "${s16[@]}" "$out/ramp.s16" "${ulaw[@]}" "$out/ramp.ulaw"
sox -V1 -D "${s16[@]}" "$out/ramp.s16" "${alaw[@]}" "$out/ramp.alaw"
sox -V1 -D "${ulaw[@]}" "$out/codes.u8" "${s16[@]}" "$out/codes-ulaw.s16"
sox -V1 -D "${alaw[@]}" "$out/codes.u8" "${s16[@]}" "$out/codes-alaw.s16"

# Sizes are fixed by construction; a mismatch means sox did something else.
check() { [ "$(stat -c %s "$1")" -eq "$2" ] || { echo "make-vectors.sh: $1 is not $2 bytes" >&2; exit 1; }; }
check "$out/ramp.s16" 131072
check "$out/ramp.ulaw" 65536
check "$out/ramp.alaw" 65536
check "$out/codes.u8" 256
check "$out/codes-ulaw.s16" 512
check "$out/codes-alaw.s16" 512
echo "wrote $(ls "$out" | wc -l) files to $out"
