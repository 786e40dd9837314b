"""Security advisories as CSAF 2.0 documents, under the CSAF provider layout.

* :mod:`repotool.csaf.document`: pure, one advisory record in, one
  ``csaf_security_advisory`` document out, and the checks that refuse a record
  whose document would be invalid; its product tree is
  :mod:`repotool.csaf.products`, the settings and each document's path
  :mod:`repotool.csaf.layout`;
* :mod:`repotool.csaf.provider`: pure, every document plus ``index.txt``,
  ``changes.csv``, the ROLIE feed, the hash files and ``provider-metadata.json``;
* :mod:`repotool.csaf.writer`: the thin shell that signs the documents with the
  release key and swaps the tree into ``public/.well-known/csaf/`` at once.
"""
