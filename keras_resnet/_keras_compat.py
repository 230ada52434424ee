"""Every use of a private Keras entry point, fenced in one module.

The rest of the package calls only public Keras plus the functions here. Each function names the private
Keras method or module it relies on, and `tests/test_keras_compat.py` has one test per use that fails with
a message naming the Keras change when a Keras release breaks it. `setup.cfg` pins the Keras releases
those tests passed on.
"""
