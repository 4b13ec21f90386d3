"""A fifth method that exists only for the tests: the proof that a method is its own
package plus one registry line (``tests/core/test_fifth_method.py``). Like the real ones,
``spec`` is light (its parameters and its Method) and ``heavy`` trains and predicts."""
