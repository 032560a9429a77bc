#!/usr/bin/env python3
"""Writes a file:// upstream for the chantal-fs benchmark: N small package files (random
bytes, SIZE each) and one package of HUGE bytes, all flat under Packages/, with repodata
(primary, filelists, other; gzip; sha256) that names them with their real checksums.

usage: gen_files.py OUT N SIZE HUGE"""
import gzip, hashlib, os, sys

out, n, size, huge = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
os.makedirs(os.path.join(out, "Packages"), exist_ok=True)
os.makedirs(os.path.join(out, "repodata"), exist_ok=True)

def package(name, length):
    href = f"Packages/{name}-1.0-1.noarch.rpm"
    path = os.path.join(out, href)
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = length
        while left:
            chunk = os.urandom(min(left, 1 << 22))
            h.update(chunk); f.write(chunk); left -= len(chunk)
    return name, href, h.hexdigest(), length

pkgs = [package(f"small-{i:05d}", size) for i in range(n)]
pkgs.append(package("huge", huge))

def write(kind, head, body, tail):
    data = gzip.compress("".join([head, *body, tail]).encode(), compresslevel=1)
    s = hashlib.sha256(data).hexdigest()
    href = f"repodata/{s}-{kind}.xml.gz"
    with open(os.path.join(out, href), "wb") as f:
        f.write(data)
    return kind, s, len(data), href

def primary():
    for name, href, sha, length in pkgs:
        yield f"""<package type="rpm"><name>{name}</name><arch>noarch</arch>
<version epoch="0" ver="1.0" rel="1"/><checksum type="sha256" pkgid="YES">{sha}</checksum>
<summary>{name}</summary><description>fs bench</description><packager/><url/>
<time file="1700000000" build="1700000000"/><size package="{length}" installed="{length}" archive="{length}"/>
<location href="{href}"/><format><rpm:license>MIT</rpm:license><rpm:sourcerpm>{name}-1.0-1.src.rpm</rpm:sourcerpm>
<rpm:provides><rpm:entry name="{name}" flags="EQ" epoch="0" ver="1.0" rel="1"/></rpm:provides></format></package>
"""

def other(kind):
    for name, _, sha, _ in pkgs:
        yield f'<package pkgid="{sha}" name="{name}" arch="noarch"><version epoch="0" ver="1.0" rel="1"/></package>\n'

ns = 'xmlns="http://linux.duke.edu/metadata'
records = [
    write("primary", f'<?xml version="1.0" encoding="UTF-8"?>\n<metadata {ns}/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="{len(pkgs)}">\n', primary(), "</metadata>\n"),
    write("filelists", f'<?xml version="1.0" encoding="UTF-8"?>\n<filelists {ns}/filelists" packages="{len(pkgs)}">\n', other("filelists"), "</filelists>\n"),
    write("other", f'<?xml version="1.0" encoding="UTF-8"?>\n<otherdata {ns}/other" packages="{len(pkgs)}">\n', other("other"), "</otherdata>\n"),
]
with open(os.path.join(out, "repodata", "repomd.xml"), "w") as f:
    f.write(f'<?xml version="1.0" encoding="UTF-8"?>\n<repomd {ns}/repo">\n  <revision>1700000000</revision>\n')
    for kind, s, length, href in records:
        f.write(f'  <data type="{kind}"><checksum type="sha256">{s}</checksum><location href="{href}"/><timestamp>1700000000</timestamp><size>{length}</size></data>\n')
    f.write("</repomd>\n")
