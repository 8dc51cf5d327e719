"""Regenerate agentlightning/v1/*_pb2*.py from protos/ (the single source of truth).

Run: python scripts/gen_protos.py            # write the generated files
     python scripts/gen_protos.py --check    # exit 1 if the committed files are stale

Pinned to grpcio-tools 1.71.2 (protobuf 5.29 gencode), which also loads under the protobuf 7 runtime.
"""
from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT_DIR = ROOT / "agentlightning" / "v1"
GRPC_TOOLS_VERSION = "1.71.2"


def generate(into: Path) -> list[Path]:
    from grpc_tools import protoc  # dev dependency only
    import grpc_tools

    protos = sorted(PROTO_ROOT.glob("agentlightning/v1/*.proto"))
    include = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={into}",
        f"--pyi_out={into}",
        f"--grpc_python_out={into}",
        *[str(p.relative_to(PROTO_ROOT)) for p in protos],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return sorted((into / "agentlightning" / "v1").glob("*_pb2*.py*"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    from importlib.metadata import version

    if version("grpcio-tools") != GRPC_TOOLS_VERSION:
        print(f"need grpcio-tools=={GRPC_TOOLS_VERSION}, found {version('grpcio-tools')}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        generated = generate(Path(tmp))
        stale = [p.name for p in generated if not (OUT_DIR / p.name).exists()
                 or not filecmp.cmp(p, OUT_DIR / p.name, shallow=False)]
        expected = {p.name for p in generated}
        extra = [p.name for p in OUT_DIR.glob("*_pb2*.py*") if p.name not in expected]
        if args.check:
            if stale or extra:
                print(f"generated code is stale: {sorted(stale + extra)}; run python scripts/gen_protos.py")
                return 1
            print("generated code is up to date")
            return 0
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        for name in extra:
            (OUT_DIR / name).unlink()
        for p in generated:
            shutil.copyfile(p, OUT_DIR / p.name)
        print(f"wrote {len(generated)} files to {OUT_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
