#!/usr/bin/env python3
"""Independent model of rcsim's float conversions; prints the expectation tables that
kernels/common/tests/numeric_test.cc embeds (run once by hand; the test does not run Python).

Everything is exact rational arithmetic (fractions.Fraction) on values decoded from the format
definitions, not from rcsim's code: RNE on the format's value grid, ties to the even code,
fp8 saturating to +-max, bf16/fp16 overflowing to inf. fp16 is cross-checked with struct 'e'.
"""
import math
import struct
from fractions import Fraction as F


def f32_bits(x):
    return struct.unpack('<I', struct.pack('<f', x))[0]


def bits_f32(b):
    return struct.unpack('<f', struct.pack('<I', b))[0]


def f32_value(b):
    """Exact rational value of fp32 bits (finite only)."""
    sign = -1 if b >> 31 else 1
    e = (b >> 23) & 0xFF
    m = b & 0x7FFFFF
    if e == 0:
        return sign * F(m, 1 << 149)
    return sign * F((1 << 23) | m, 1) * F(2) ** (e - 150)


# ---- fp8 ---------------------------------------------------------------------------------
def fp8_decode(code, fmt):
    """Value of an fp8 code from the format definition; None for NaN."""
    bias = 7 if fmt == 'fn' else 8
    if fmt == 'fnuz' and code == 0x80:
        return None
    if fmt == 'fn' and (code & 0x7F) == 0x7F:
        return None
    sign = -1 if code & 0x80 else 1
    e = (code >> 3) & 0xF
    m = code & 7
    if e == 0:
        mag = F(m, 8) * F(2) ** (1 - bias)
    else:
        mag = (1 + F(m, 8)) * F(2) ** (e - bias)
    return sign * mag


def fp8_positive_grid(fmt):
    return sorted((fp8_decode(c, fmt), c) for c in range(0x80) if fp8_decode(c, fmt) is not None)


def fp8_encode(bits, fmt):
    neg = bits >> 31
    if (bits & 0x7FFFFFFF) > 0x7F800000:
        return (0xFF if neg else 0x7F) if fmt == 'fn' else 0x80
    grid = fp8_positive_grid(fmt)
    maxv, maxc = grid[-1]
    if (bits & 0x7FFFFFFF) == 0x7F800000:
        code = maxc
    else:
        m = abs(f32_value(bits))
        if m >= maxv:
            code = maxc
        else:
            for (a, ca), (b, cb) in zip(grid, grid[1:]):
                if a <= m < b:
                    if m - a < b - m:
                        code = ca
                    elif m - a > b - m:
                        code = cb
                    else:
                        code = ca if ca % 2 == 0 else cb
                    break
    if code == 0 and fmt == 'fnuz':
        return 0
    return code | (0x80 if neg else 0)


# ---- bf16 / fp16 ---------------------------------------------------------------------------
def round_grid_binary(m, mant_bits, emin, emax):
    """RNE of a non-negative rational onto a binary float grid with mant_bits fraction bits and
    normal exponents [emin, emax]; returns the rounded value, or None when it overflows."""
    if m == 0:
        return F(0)
    # Subnormal spacing 2^(emin - mant_bits); normal spacing 2^(e - mant_bits).
    e = max(emin, math.floor(math.log2(m)) if m > 0 else emin)
    # Correct floor(log2) for rationals.
    while F(2) ** e > m and e > emin:
        e -= 1
    while F(2) ** (e + 1) <= m:
        e += 1
    ulp = F(2) ** (e - mant_bits)
    q = m / ulp
    lo = math.floor(q)
    rem = q - lo
    if rem > F(1, 2) or (rem == F(1, 2) and lo % 2 == 1):
        lo += 1
    value = lo * ulp
    if value >= F(2) ** (emax + 1):
        return None
    return value


def fp16_encode(bits):
    neg = bits >> 31
    sign = 0x8000 if neg else 0
    if (bits & 0x7FFFFFFF) > 0x7F800000:
        return sign | 0x7E00
    if (bits & 0x7FFFFFFF) == 0x7F800000:
        return sign | 0x7C00
    v = round_grid_binary(abs(f32_value(bits)), 10, -14, 15)
    if v is None:
        return sign | 0x7C00
    # Re-encode the rounded value exactly.
    if v == 0:
        return sign
    if v < F(2) ** -14:
        return sign | int(v / F(2) ** -24)
    e = 0
    while F(2) ** (e + 1) <= v:
        e += 1
    while F(2) ** e > v:
        e -= 1
    mant = int((v / F(2) ** e - 1) * 1024)
    code = sign | ((e + 15) << 10) | mant
    if not neg and abs(bits_f32(bits)) < 65504:
        assert struct.unpack('<H', struct.pack('<e', bits_f32(bits)))[0] == code, hex(bits)
    return code


def bf16_encode(bits):
    neg = bits >> 31
    sign = 0x8000 if neg else 0
    if (bits & 0x7FFFFFFF) > 0x7F800000:
        return (bits >> 16) | 0x0040  # quiet NaN, sign and top payload kept (the spec's choice)
    if (bits & 0x7FFFFFFF) == 0x7F800000:
        return sign | 0x7F80
    m = abs(f32_value(bits))
    v = round_grid_binary(m, 7, -126, 127)
    if v is None:
        return sign | 0x7F80
    b = f32_bits(float(v))  # v has <= 8 significant bits: exact in fp32 (and in a Python float)
    assert f32_value(b) == v
    return sign | (b >> 16)


def fmt_f32(b):
    return f'0x{b:08X}u'


def main():
    for fmt in ('fn', 'fnuz'):
        print(f'// ---- fp8 e4m3{fmt}: decoded value bits of codes 0x00..0xFF (NaN: 0x7FC00000)')
        vals = []
        for c in range(256):
            v = fp8_decode(c, fmt)
            if v is None:
                vals.append(0x7FC00000 | ((c & 0x80) << 24 if fmt == 'fn' else 0))
            else:
                b = f32_bits(float(v))
                assert f32_value(b) == v
                if v == 0 and c & 0x80:
                    b = 0x80000000
                vals.append(b)
        for i in range(0, 256, 8):
            print('    ' + ', '.join(fmt_f32(b) for b in vals[i:i + 8]) + ',')
    # Encode cases: ties, neighbours of ties, overflow, subnormals, NaN, zeros.
    cases = set()
    for fmt in ('fn', 'fnuz'):
        grid = [v for v, _ in fp8_positive_grid(fmt)]
        for a, b in zip(grid, grid[1:]):
            mid = f32_bits(float((a + b) / 2))
            for d in (-1, 0, 1):
                cases.add(mid + d)
        maxv = grid[-1]
        for v in (maxv, maxv * F(33, 32), maxv * F(17, 16), maxv * 2, F(10) ** 6):
            cases.add(f32_bits(float(v)))
        minsub = grid[1]
        for v in (minsub, minsub / 2, minsub / 4, minsub * F(3, 4)):
            cases.add(f32_bits(float(v)))
        cases.add(f32_bits(float(minsub / 2)) + 1)
    for b in (0x00000000, 0x00000001, 0x007FFFFF, 0x7F800000, 0x7FC00000, 0x7F800001,
              0x3F800000, 0x3FC00000, 0x40490FDB):
        cases.add(b)
    cases = sorted(cases | {c | 0x80000000 for c in cases})
    print('// ---- fp8 encode cases: {input bits, e4m3fn code, e4m3fnuz code}')
    for b in cases:
        print(f'    {{{fmt_f32(b)}, 0x{fp8_encode(b, "fn"):02X}, 0x{fp8_encode(b, "fnuz"):02X}}},')
    # bf16 / fp16 encode cases.
    hcases = set()
    for b in (0x3F800000, 0x3F808000, 0x3F818000, 0x3F808001, 0x3F807FFF, 0x7F7FFFFF,
              0x7F7F8000, 0x7F7F7FFF, 0x00000001, 0x00400000, 0x007FFFFF, 0x00008000, 0x00018000,
              0x7F800000, 0x7FC00000, 0x7F800001, 0x7FA12345, 0x00000000,
              0x477FE000, 0x477FF000, 0x477FEFFF, 0x477FF001, 0x47800000,
              0x33000000, 0x33000001, 0x33800000, 0x33C00000, 0x34000000, 0x387FC000,
              0x387FE000, 0x38800000, 0x3F801000, 0x3F803000, 0x3F801001, 0x3F802FFF,
              0x40490FDB, 0x3DCCCCCD):
        hcases.add(b)
    hcases = sorted(hcases | {c | 0x80000000 for c in hcases})
    print('// ---- bf16 / fp16 encode cases: {input bits, bf16 bits, fp16 bits}')
    for b in hcases:
        print(f'    {{{fmt_f32(b)}, 0x{bf16_encode(b):04X}, 0x{fp16_encode(b):04X}}},')


if __name__ == '__main__':
    main()
