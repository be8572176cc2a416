"""The plant's language: machines, dies, shots, castings, verdicts, states.

Pure: nothing here opens a file, a socket or a database.
"""
