"""Reference geometry of scikit-image's astronaut.png, shared by the locator tests."""

# Eye centres read off the face mesh and checked by eye on the image (pixels, x right, y down).
REFERENCE = {"left": (204.4, 102.1), "right": (247.1, 104.6)}
EYE_WIDTH = 19.3
