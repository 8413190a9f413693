"""Tape: the drive protocol (``handle.py``) with the Linux st driver (``st.py``) and a file-backed virtual
drive (``virtual.py``, ``cartridge.py``), media labels and inventory, the TapeSink that moves archives to
tape, the tape catalog and the reading API restore uses (``reader.py``)."""
