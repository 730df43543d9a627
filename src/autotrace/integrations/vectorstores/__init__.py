"""Vector stores: direct similarity searches become retrievals, writes become spans with counts.

One module per store says what it patches; ``_common`` holds the one mechanism they share.
"""
