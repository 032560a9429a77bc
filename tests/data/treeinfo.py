"""productmd, for the installer tree tests.

  treeinfo.py make DIR    writes DIR/.treeinfo for the images under DIR (checksums computed),
                          with variant BaseOS served from the tree and AppStream elsewhere
  treeinfo.py extra DIR FILE...
                          writes DIR/extra_files.json (as pungi does, through productmd)
                          listing FILE... below DIR
  treeinfo.py check FILE  loads and validates FILE; prints the variants it lists, as JSON
"""
import hashlib
import json
import os
import sys

import productmd.extra_files as xf
import productmd.treeinfo as ti

IMAGES = {
    "kernel": "images/pxeboot/vmlinuz",
    "initrd": "images/pxeboot/initrd.img",
    "boot.iso": "images/boot.iso",
    "efiboot.img": "images/efiboot.img",
}
STAGE2 = "images/install.img"


def make(root):
    t = ti.TreeInfo()
    t.release.name = "Rocky Linux"
    t.release.short = "Rocky"
    t.release.version = "9"
    t.release.type = "ga"
    t.tree.arch = "x86_64"
    t.tree.build_timestamp = 1700000000
    t.tree.platforms.add("x86_64")
    for vid, repo in (("BaseOS", "."), ("AppStream", "../appstream")):
        v = ti.Variant(t)
        v.id = v.uid = v.name = vid
        v.type = "variant"
        v.paths.repository = repo
        v.paths.packages = repo + "/Packages"
        t.variants.add(v)
    t.images.images["x86_64"] = dict(IMAGES)
    t.stage2.mainimage = STAGE2
    for path in list(IMAGES.values()) + [STAGE2]:
        t.checksums.add(path, "sha256", root_dir=root)
    t.dump(root + "/.treeinfo")


def check(path):
    t = ti.TreeInfo()
    t.load(path)
    t.validate()
    print(json.dumps(sorted(t.variants)))


def extra(root, *files):
    ef = xf.ExtraFiles()
    for f in files:
        with open(os.path.join(root, f), "rb") as fh:
            data = fh.read()
        ef.add("BaseOS", "x86_64", "BaseOS/x86_64/os/" + f, size=len(data),
               checksums={"sha256": hashlib.sha256(data).hexdigest()})
    with open(os.path.join(root, "extra_files.json"), "w") as out:
        ef.dump_for_tree(out, "BaseOS", "x86_64", "BaseOS/x86_64/os/")


if __name__ == "__main__":
    {"make": make, "check": check, "extra": extra}[sys.argv[1]](*sys.argv[2:])
