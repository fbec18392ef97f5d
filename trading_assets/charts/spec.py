"""What every chart is: its size in inches and pixels and the PNG it is stored as. A leaf module:
the checks import it without loading the renderer (and Matplotlib)."""

FIGSIZE_INCHES = (14.0, 10.0)
DPI = 100
WIDTH_PX, HEIGHT_PX = int(FIGSIZE_INCHES[0] * DPI), int(FIGSIZE_INCHES[1] * DPI)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
