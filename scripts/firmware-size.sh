#!/usr/bin/env bash
# Builds examples/firmware (release, thumbv7em-none-eabihf) and prints its flash and RAM
# use: the size of .text, and the code size of every generated layer, i.e. the sum of the
# sizes of the text symbols whose demangled path lies in the layer's module
# (`...::models::<model>::<layer>::...`). Whatever is left is printed by origin.
#
# usage: scripts/firmware-size.sh [--no-build] [--symbols] [--int8] [-- EXTRA CARGO ARGS]
#   --symbols  also list every text symbol with its size
#   --int8     the int8 net (feature `int8`, spec/tiny_net_int8.json) instead of the f32 one
#
# Needs: rustup target thumbv7em-none-eabihf, and an nm/size that read 32-bit ARM ELF:
# arm-linux-gnueabihf-nm/-size (Debian: binutils-arm-linux-gnueabihf, which
# gcc-arm-linux-gnueabihf pulls in), arm-none-eabi-* (binutils-arm-none-eabi) or llvm-nm
# and llvm-size. NM=... SIZE=... choose others.
#
# Exits non-zero when the build fails, when no tool is found, or when a layer of the spec
# has no code of its own (its kernels were inlined into a caller, so the per-layer numbers
# would be wrong).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fw="$root/examples/firmware"
target=thumbv7em-none-eabihf
bin_name=gspc-firmware-example
spec="$fw/spec/tiny_net.json"

build=1
list_symbols=0
int8=0
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) build=0 ;;
        --symbols) list_symbols=1 ;;
        --int8) int8=1 ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "firmware-size: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ "$int8" = 1 ]; then
    spec="$fw/spec/tiny_net_int8.json"
    extra=(--features int8 ${extra[@]+"${extra[@]}"})
fi

pick() {
    # The first of the given tools that exists.
    local t
    for t in "$@"; do
        if command -v "$t" >/dev/null 2>&1; then
            echo "$t"
            return 0
        fi
    done
    return 1
}
NM="${NM:-$(pick arm-linux-gnueabihf-nm arm-none-eabi-nm llvm-nm || true)}"
SIZE="${SIZE:-$(pick arm-linux-gnueabihf-size arm-none-eabi-size llvm-size || true)}"
if [ -z "$NM" ] || [ -z "$SIZE" ]; then
    echo "firmware-size: no nm/size for ARM ELF found (apt-get install binutils-arm-linux-gnueabihf)" >&2
    exit 1
fi

if [ "$build" = 1 ]; then
    echo "+ cargo build --release --target $target ${extra[*]:-} (in examples/firmware)" >&2
    if ! (cd "$fw" && cargo build --release --target "$target" ${extra[@]+"${extra[@]}"}); then
        echo "firmware-size: the firmware build failed" >&2
        exit 1
    fi
fi

# The target directory: CARGO_TARGET_DIR if set, else the example's own.
target_dir="${CARGO_TARGET_DIR:-$fw/target}"
case "$target_dir" in /*) ;; *) target_dir="$fw/$target_dir" ;; esac
elf="$target_dir/$target/release/$bin_name"
if [ ! -f "$elf" ]; then
    echo "firmware-size: $elf not found (build it first, or drop --no-build)" >&2
    exit 1
fi

sections="$("$SIZE" -A "$elf")"
section_size() {
    echo "$sections" | awk -v s="$1" '$1 == s { print $2; found = 1 } END { if (!found) print 0 }'
}
text=$(section_size .text)
vectors=$(section_size .vector_table)
rodata=$(section_size .rodata)
data=$(section_size .data)
bss=$(section_size .bss)
uninit=$(section_size .uninit)

# Layer names, in spec order, from the spec the firmware compiles.
mapfile -t layers < <(grep -o '"name"[[:space:]]*:[[:space:]]*"[^"]*"' "$spec" | sed 's/.*"\([^"]*\)"$/\1/')
model="$(grep -o '"model"[[:space:]]*:[[:space:]]*"[^"]*"' "$spec" | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/')"

# Text symbols with sizes, demangled: "size type name...".
symbols="$("$NM" -S -C --size-sort --radix=d "$elf" | awk 'NF >= 4 && ($3 == "t" || $3 == "T" || $3 == "W" || $3 == "w") { size = $2 + 0; $1 = ""; $2 = ""; $3 = ""; sub(/^ +/, ""); print size "\t" $0 }')"

echo
echo "firmware: $elf"
printf '%-34s %10s\n' "section" "bytes"
printf '%-34s %10d\n' ".vector_table" "$vectors" ".text" "$text" ".rodata" "$rodata" ".data" "$data" ".bss" "$bss"
printf '%-34s %10d\n' "flash (vectors+text+rodata+data)" "$((vectors + text + rodata + data))"
printf '%-34s %10d\n' "static RAM (data+bss+uninit)" "$((data + bss + uninit))"

echo
echo "code per layer of model $model (text symbols under ::models::$model::<layer>::)"
printf '%-34s %10s %8s\n' "layer" "bytes" "symbols"
status=0
attributed=0
for layer in "${layers[@]}"; do
    read -r bytes count < <(echo "$symbols" | awk -F'\t' -v pat="::models::$model::$layer::" \
        'index($2, pat) { b += $1; n++ } END { print b + 0, n + 0 }')
    printf '%-34s %10d %8d\n' "$layer" "$bytes" "$count"
    attributed=$((attributed + bytes))
    if [ "$bytes" -eq 0 ]; then
        echo "firmware-size: layer $layer has no code of its own: its kernels were inlined elsewhere" >&2
        status=1
    fi
done
printf '%-34s %10d\n' "all layers" "$attributed"

echo
echo "the rest of .text, by origin"
printf '%-34s %10s %8s\n' "origin" "bytes" "symbols"
echo "$symbols" | awk -F'\t' -v model="$model" '
    index($2, "::models::" model "::") { next }   # the layers, above
    {
        n = $2
        if (index(n, "::models::" model)) o = "model " model " (shared)"
        else if (n ~ /^gspc_runtime::/ || index(n, " gspc_runtime::")) o = "gspc_runtime"
        else if (n ~ /^gspc_firmware_example::/) o = "example (main)"
        else if (n ~ /^(cortex_m_rt|cortex_m|panic_halt|cortex_m_semihosting)/ || n ~ /(^|::)(Reset|DefaultHandler_|DefaultPreInit|HardFault_|main|__pre_init|rust_begin_unwind)$/) o = "cortex-m-rt, panic handler"
        else if (n ~ /^(compiler_builtins::|__aeabi_|__)/) o = "compiler_builtins"
        else if (n ~ /^(core::|<)/ || index(n, "core::")) o = "core"
        else o = "other"
        bytes[o] += $1; count[o]++
    }
    END { for (o in bytes) printf "%-34s %10d %8d\n", o, bytes[o], count[o] }' | sort -k1,1
total_symbols=$(echo "$symbols" | awk -F'\t' '{ b += $1 } END { print b + 0 }')
printf '%-34s %10d\n' "sum of text symbols" "$total_symbols"
printf '%-34s %10d\n' "padding, unnamed (.text - sum)" "$((text - total_symbols))"
if [ "$list_symbols" = 1 ]; then
    echo
    echo "every text symbol (bytes, demangled name)"
    echo "$symbols" | sort -n -r
fi
exit "$status"
