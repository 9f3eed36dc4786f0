#!/usr/bin/env python3
"""checkcycles.py: fail when the core's files call each other in a circle.

Reads the symbols each object under build/lib/ext/ defines and uses (nm),
draws an edge from a file to every other ext/ file whose function it calls
(ext/cache/ counts as one node), and prints each strongly connected set of
two or more files.  main.c may call everyone; nobody may call back into a
file that calls them (docs/ARCHITECTURE.md, "Layout").  Exit status 1 on a
cycle.  Usage: checkcycles.py [-v] (from the top of the tree, after make).
"""
import collections
import glob
import subprocess
import sys


def node(path):
    name = path[len('build/lib/'):-2]
    return 'ext/cache' if name.startswith('ext/cache/') else name


def main():
    objs = sorted(glob.glob('build/lib/ext/**/*.o', recursive=True))
    if not objs:
        print('checkcycles: no objects under build/lib/ext (run make first)')
        return 1
    defined, used = {}, collections.defaultdict(set)
    for obj in objs:
        out = subprocess.run(['nm', obj], capture_output=True, text=True,
                             check=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] in 'TDRB':
                defined[parts[2]] = node(obj)
            elif len(parts) == 2 and parts[0] == 'U':
                used[node(obj)].add(parts[1])
    graph = collections.defaultdict(set)
    for src, syms in used.items():
        for sym in syms:
            dst = defined.get(sym)
            if dst and dst != src:
                graph[src].add(dst)
    # Tarjan's strongly connected components.
    index, low, stack, on, cycles = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(set(graph) | set(used)):
        if v not in index:
            visit(v)
    if '-v' in sys.argv:
        for v in sorted(graph):
            print(v, '->', ' '.join(sorted(graph[v])))
    for comp in cycles:
        print('checkcycles: these ext/ files call each other in a circle:',
              ' '.join(comp))
    if not cycles:
        print('cycles ok')
    return 1 if cycles else 0


if __name__ == '__main__':
    sys.exit(main())
