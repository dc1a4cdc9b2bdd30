"""Synthetic directory data: reference tables (`terminology`, `people`, `places`), shared element
builders (`elements`), one builder module per resource family (`organizations`, `locations`,
`practitioners`, `endpoints`, `services`, `plans`), and the generator that drives them
(`generator`, `manage.py generatedirectory`); the sample fixture is built by `sample/` and
`sample_directory.py`. Import names from the module that defines them.
"""
