#!/usr/bin/env python3
"""Writes repodata (primary, filelists, other, gzip; repomd.xml) for N generated packages, each
with a realistic handful of provides, requires, files and changelog entries. No package files:
it exercises the metadata phase only (chantal repo sync --dry-run)."""
import gzip, hashlib, os, sys

n, out = int(sys.argv[1]), sys.argv[2]
os.makedirs(os.path.join(out, "repodata"), exist_ok=True)

def write(kind, head, body, tail):
    path = os.path.join(out, "repodata", f"{kind}.xml.gz")
    raw = hashlib.sha256()
    size = 0
    with gzip.open(path, "wb", compresslevel=1) as f:
        for chunk in [head] + list(body) + [tail]:
            b = chunk.encode()
            raw.update(b); size += len(b)
            f.write(b)
    data = open(path, "rb").read()
    s = hashlib.sha256(data).hexdigest()
    final = os.path.join(out, "repodata", f"{s}-{kind}.xml.gz")
    os.rename(path, final)
    return kind, s, len(data), raw.hexdigest(), size, f"repodata/{s}-{kind}.xml.gz"

def pkgid(i):
    return hashlib.sha256(f"pkg{i}".encode()).hexdigest()

def primary():
    for i in range(n):
        name = f"gen-{i:06d}"
        yield f"""<package type="rpm">
  <name>{name}</name>
  <arch>x86_64</arch>
  <version epoch="0" ver="1.{i % 7}.{i % 13}" rel="{i % 5 + 1}.el9"/>
  <checksum type="sha256" pkgid="YES">{pkgid(i)}</checksum>
  <summary>Generated package {i} for the metadata benchmark</summary>
  <description>A generated package used to measure how chantal reads metadata &amp; plans a sync.</description>
  <packager>bench</packager>
  <url>https://example.invalid/{name}</url>
  <time file="1700000000" build="1700000000"/>
  <size package="{20000 + i}" installed="{80000 + i}" archive="{81000 + i}"/>
  <location href="Packages/{name[4]}/{name}-1.{i % 7}.{i % 13}-{i % 5 + 1}.el9.x86_64.rpm"/>
  <format>
    <rpm:license>MIT</rpm:license>
    <rpm:vendor>bench</rpm:vendor>
    <rpm:group>Unspecified</rpm:group>
    <rpm:buildhost>bench.example.invalid</rpm:buildhost>
    <rpm:sourcerpm>{name}-1.0-1.el9.src.rpm</rpm:sourcerpm>
    <rpm:header-range start="4504" end="{9000 + i % 1000}"/>
    <rpm:provides>
      <rpm:entry name="{name}" flags="EQ" epoch="0" ver="1.{i % 7}.{i % 13}" rel="{i % 5 + 1}.el9"/>
      <rpm:entry name="{name}(x86-64)" flags="EQ" epoch="0" ver="1.{i % 7}.{i % 13}" rel="{i % 5 + 1}.el9"/>
      <rpm:entry name="lib{name}.so.1()(64bit)"/>
    </rpm:provides>
    <rpm:requires>
      <rpm:entry name="libc.so.6(GLIBC_2.34)(64bit)"/>
      <rpm:entry name="gen-{(i + 1) % n:06d}" flags="GE" epoch="0" ver="1.0"/>
      <rpm:entry name="rtld(GNU_HASH)"/>
    </rpm:requires>
    <file>/usr/bin/{name}</file>
  </format>
</package>
"""

def filelists():
    for i in range(n):
        name = f"gen-{i:06d}"
        files = "".join(f"  <file>/usr/share/{name}/file{j}</file>\n" for j in range(8))
        yield f"""<package pkgid="{pkgid(i)}" name="{name}" arch="x86_64">
  <version epoch="0" ver="1.{i % 7}.{i % 13}" rel="{i % 5 + 1}.el9"/>
  <file>/usr/bin/{name}</file>
  <file type="dir">/usr/share/{name}</file>
{files}</package>
"""

def other():
    for i in range(n):
        name = f"gen-{i:06d}"
        yield f"""<package pkgid="{pkgid(i)}" name="{name}" arch="x86_64">
  <version epoch="0" ver="1.{i % 7}.{i % 13}" rel="{i % 5 + 1}.el9"/>
  <changelog author="Bench &lt;bench@example.invalid&gt; - 1.0-1" date="1700000000">- Rebuilt for the benchmark</changelog>
  <changelog author="Bench &lt;bench@example.invalid&gt; - 0.9-1" date="1690000000">- Initial package</changelog>
</package>
"""

ns = 'xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm"'
records = [
    write("primary", f'<?xml version="1.0" encoding="UTF-8"?>\n<metadata {ns} packages="{n}">\n', primary(), "</metadata>\n"),
    write("filelists", f'<?xml version="1.0" encoding="UTF-8"?>\n<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="{n}">\n', filelists(), "</filelists>\n"),
    write("other", f'<?xml version="1.0" encoding="UTF-8"?>\n<otherdata xmlns="http://linux.duke.edu/metadata/other" packages="{n}">\n', other(), "</otherdata>\n"),
]
with open(os.path.join(out, "repodata", "repomd.xml"), "w") as f:
    f.write('<?xml version="1.0" encoding="UTF-8"?>\n<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">\n  <revision>1700000000</revision>\n')
    for kind, s, size, osum, osize, href in records:
        f.write(f'  <data type="{kind}">\n    <checksum type="sha256">{s}</checksum>\n    <open-checksum type="sha256">{osum}</open-checksum>\n    <location href="{href}"/>\n    <timestamp>1700000000</timestamp>\n    <size>{size}</size>\n    <open-size>{osize}</open-size>\n  </data>\n')
    f.write("</repomd>\n")
