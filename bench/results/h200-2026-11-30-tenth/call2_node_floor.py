# The floor of one kernel node in a replayed CUDA graph on this card: a graph of N launches of a
# one-element kernel, replayed, device events around the replays (as gpu_bench times its rows).
import torch
x = torch.ones(1, device="cuda")
s = torch.cuda.Stream()
N = 64
with torch.cuda.stream(s):
    for _ in range(3):
        x.add_(1)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g, stream=s):
        for _ in range(N):
            x.add_(1)
samples = []
with torch.cuda.stream(s):
    g.replay()
    for r in range(7):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record(s)
        for _ in range(50):
            g.replay()
        b.record(s)
        b.synchronize()
        samples.append(a.elapsed_time(b) * 1000 / (50 * N))
samples.sort()
print(f"{torch.cuda.get_device_name()}: one-element kernel node in a replayed graph: "
      f"median {samples[3]:.2f} us per node (min {samples[0]:.2f}, max {samples[-1]:.2f}; {N} nodes x 50 replays x 7)")
