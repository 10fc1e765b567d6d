import struct, random, math
random.seed(1)
D=128
def f32(x): return struct.unpack('<f',struct.pack('<f',x))[0]
def bf16(x):
    b=struct.unpack('<I',struct.pack('<f',x))[0]
    b=((b + 0x7FFF + ((b>>16)&1))>>16)<<16 & 0xFFFFFFFF
    return struct.unpack('<f',struct.pack('<I',b))[0]
def rnd(lo,hi): 
    m=lo+(hi-lo)*random.random(); return bf16(-m if random.random()<0.5 else m)
w=[rnd(0.25,2.0) for _ in range(D)]
x=[rnd(0.05,4.0) for _ in range(D)]
eps=1e-6
for it in range(1,3001):
    ss=f32(sum(f32(v*v) for v in x))
    r=f32(1/math.sqrt(f32(ss/D+eps)))
    x=[bf16(f32(f32(v*r)*wi)) for v,wi in zip(x,w)]
    if it in (1,2,5,10,20,50,100,200,500,1000,2000,3000):
        nz=sum(1 for v in x if v!=0); tiny=sum(1 for v in x if v!=0 and abs(v)<1.1754944e-38)
        print(it,"nonzero",nz,"denormal",tiny,"max %.3g"%max(abs(v) for v in x),"ss %.3g"%ss)
