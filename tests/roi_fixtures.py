"""ROI files written by each format's own library (numpy in suite2p's layout, h5py in
CaImAn's, pynwb, roifile) from the masks of a label image; shared by the ROI file tests."""

from __future__ import annotations

import datetime

import numpy as np

LY, LX = 20, 27  # not square: a transposed reading fails


def truth() -> np.ndarray:
    """Three ROIs of the (LY, LX) frame as a label image: two rectangles and an L shape."""
    lab = np.zeros((LY, LX), np.int32)
    lab[2:6, 3:9] = 1
    lab[10:16, 18:23] = 2
    lab[12:18, 4:6] = 3
    lab[16:18, 6:11] = 3
    return lab


def masks(lab):
    return [np.nonzero(lab == i) for i in range(1, lab.max() + 1)]


def suite2p(folder, lab, iscell=(1, 0, 1)):
    folder.mkdir(exist_ok=True)
    stat = []
    for ys, xs in masks(lab):
        lam = np.linspace(1.0, 0.2, ys.size).astype(np.float32)
        # a pixel of weight 0 and a pixel flagged as overlapping: neither is in the ROI
        ys2, xs2 = np.r_[ys, 0], np.r_[xs, 0]
        lam2 = np.r_[lam, 0.0]
        overlap = np.zeros(ys2.size, bool)
        stat.append({"ypix": ys2, "xpix": xs2, "lam": lam2, "overlap": overlap,
                     "med": [int(np.median(ys)), int(np.median(xs))], "npix": ys2.size})
    # ROI 2 also reaches pixel (19, 0), flagged by suite2p as overlapping another ROI
    s = stat[1]
    s["ypix"], s["xpix"] = np.r_[s["ypix"], LY - 1], np.r_[s["xpix"], 0]
    s["lam"], s["overlap"] = np.r_[s["lam"], 0.5], np.r_[s["overlap"], True]
    np.save(folder / "stat.npy", np.array(stat, dtype=object), allow_pickle=True)
    np.save(folder / "ops.npy", {"Ly": LY, "Lx": LX, "nframes": 40}, allow_pickle=True)
    np.save(folder / "iscell.npy", np.c_[np.asarray(iscell, float), [0.9, 0.1, 0.8]])
    return folder / "stat.npy"


def caiman(path, lab, accepted=None):
    import h5py
    from scipy import sparse

    cols = []
    for ys, xs in masks(lab):
        m = np.zeros((LY, LX))
        m[ys, xs] = np.linspace(0.3, 1.0, ys.size)
        cols.append(m.ravel(order="F"))  # CaImAn's pixel order
    A = sparse.csc_matrix(np.stack(cols, axis=1))
    with h5py.File(path, "w") as f:
        g = f.create_group("estimates/A")
        g["data"], g["indices"], g["indptr"] = A.data, A.indices, A.indptr
        g["shape"] = np.array(A.shape)
        f["dims"] = np.array([LY, LX])
        f["estimates/C"] = np.zeros((A.shape[1], 40))
        f["estimates/idx_components"] = (np.arange(A.shape[1]) if accepted is None
                                         else np.asarray(accepted))
    return path


def nwb(path, lab, kind="pixel", yx=False):
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.ophys import ImageSegmentation, OpticalChannel, TwoPhotonSeries

    nwb = NWBFile("rois", "id0", datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc))
    dev = nwb.create_device("scope")
    plane = nwb.create_imaging_plane(
        name="plane0", optical_channel=OpticalChannel(name="green", description="GCaMP",
                                                      emission_lambda=510.0),
        description="plane", device=dev, excitation_lambda=920.0, imaging_rate=30.0,
        indicator="GCaMP6s", location="V1")
    nwb.add_acquisition(TwoPhotonSeries(name="movie", data=np.zeros((4, LY, LX), np.int16),
                                        imaging_plane=plane, rate=30.0, unit="n.a."))
    mod = nwb.create_processing_module("ophys", "ROIs")
    seg = ImageSegmentation()
    mod.add(seg)
    ps = seg.create_plane_segmentation(description="ROIs", imaging_plane=plane, name="cells")
    for ys, xs in masks(lab):
        w = np.linspace(0.5, 1.0, ys.size)
        if kind == "image":
            m = np.zeros((LY, LX))
            m[ys, xs] = w
            ps.add_roi(image_mask=m)
        else:
            cols = (ys, xs) if yx else (xs, ys)
            ps.add_roi(pixel_mask=[(int(a), int(b), float(c)) for a, b, c in zip(*cols, w, strict=True)])
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def imagej_rois(lab):
    import roifile

    # ROI 1 and 2: rectangles (ImageJ's left/top/right/bottom are pixel edges)
    rects = []
    for i in (1, 2):
        ys, xs = np.nonzero(lab == i)
        rects.append(roifile.ImagejRoi(roitype=roifile.ROI_TYPE.RECT, top=int(ys.min()),
                                       left=int(xs.min()), bottom=int(ys.max()) + 1,
                                       right=int(xs.max()) + 1, name=f"r{i}"))
    # ROI 3: the L shape as a polygon along its pixels' outer edges
    poly = np.array([[4, 12], [6, 12], [6, 16], [11, 16], [11, 18], [4, 18]], np.float32)
    rects.append(roifile.ImagejRoi.frompoints(poly, name="L"))
    return rects
