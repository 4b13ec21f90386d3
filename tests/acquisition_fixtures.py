"""Acquisition files for the reader tests: a ScanImage-like BigTIFF that tifffile parses
as ScanImage, a suite2p plane folder, a Scanbox .sbx with its .mat."""

from __future__ import annotations

import json
import logging
import struct

import numpy as np
import tifffile


def write_scanimage(path, pages, framedata):
    """A ScanImage BigTIFF: the 16-byte BigTIFF header and ScanImage's static metadata block
    (magic 0x07030301, version 3, the frame data as MATLAB text, the ROI data as JSON; the
    layout tifffile.read_scanimage_metadata reads) are written here, and tifffile appends
    the pages (each with the frame data in its Software tag, as ScanImage does)."""
    text = "\n".join(f"{k} = {v}" for k, v in framedata.items())
    fd = text.encode() + b"\0"
    roi = json.dumps({"RoiGroups": {"imagingRoiGroup": {"ver": 1}}}).encode()
    with open(path, "wb") as fh:
        fh.write(b"II" + struct.pack("<HHHQ", 43, 8, 0, 0))  # BigTIFF, no IFD yet
        fh.write(struct.pack("<IIII", 0x07030301, 3, len(fd), len(roi)) + fd + roi)
    log = logging.getLogger("tifffile")
    level = log.level
    log.setLevel(logging.ERROR)  # "contains no pages": the header alone, as intended
    try:
        with tifffile.TiffWriter(path, append=True) as tw:
            for i, page in enumerate(pages):
                tw.write(page, software=text, photometric="minisblack", metadata=None,
                         description=f"frameNumbers = {i + 1}\nacquisitionNumbers = 1\n")
    finally:
        log.setLevel(level)
    return path


def scanimage_2ch_3planes(path, volumes=4, shape=(5, 6)):
    """2 channels, 3 FastZ planes: page p = (t * 3 + z) * 2 + c is filled with p."""
    n = volumes * 3 * 2
    pages = np.arange(n, dtype=np.int16)[:, None, None] * np.ones((n, *shape), np.int16)
    fd = {"SI.hChannels.channelSave": "[1;2]", "SI.hStackManager.numSlices": 3,
          "SI.hStackManager.actualNumSlices": 3, "SI.hFastZ.enable": "true",
          "SI.hFastZ.discardFlybackFrames": "false", "SI.hStackManager.framesPerSlice": 1}
    return write_scanimage(path, pages, fd)


def suite2p_plane(folder, data):
    folder.mkdir(parents=True, exist_ok=True)
    np.asarray(data, np.int16).tofile(folder / "data.bin")
    t, ly, lx = data.shape
    np.save(folder / "ops.npy", {"Ly": ly, "Lx": lx, "nframes": t}, allow_pickle=True)
    return folder


def write_sbx(path, movie):
    """A Scanbox recording: ``movie`` (t, z, c, y, x) uint16 stored as Scanbox does (65535 -
    value, uint16, Fortran order (c, x, y, z, t)) in PATH.sbx, and its info struct in
    PATH.mat (scipy.io.savemat; the fields sbxreader reads)."""
    from scipy.io import savemat

    t, z, c, y, x = movie.shape
    stored = (65535 - movie.astype(np.uint16)).transpose(0, 1, 3, 4, 2)  # (t, z, y, x, c)
    np.ascontiguousarray(stored).tofile(path)
    info = {"sz": np.array([y, x], float), "chan": {"nchan": c}, "volscan": int(z > 1),
            "otwave": np.arange(z, dtype=float) * 10 if z > 1 else 0, "scanmode": 1,
            "resfreq": 7930, "scanbox_version": 3, "recordsPerBuffer": y,
            "dxcal": 1.0, "dycal": 1.0,
            "config": {"lines": y, "magnification": 1, "magnification_list": np.array([1.0, 2.0]),
                       "frames": t * z, "knobby": {"pos": {"x": 0.0, "y": 0.0, "z": 0.0,
                                                            "a": 0.0}}}}
    savemat(str(path.with_suffix(".mat")), {"info": info})
    return path
