"""Sphinx configuration of the skadaptive documentation.

Build from the repository root (nothing is downloaded; warnings are errors)::

    pip install -e ".[docs]"
    sphinx-build -W --keep-going -b html docs docs/_build/html

Add ``-D plot_gallery=0`` to skip running the examples (the gallery pages are
then built from the examples' code without their output).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

# The examples and the API pages import skadaptive; an installed (or editable)
# skadaptive comes first, the checkout is the fallback.
DOCS = Path(__file__).resolve().parent
sys.path.append(str(DOCS.parent))

# Figures are written to files, never shown.
os.environ.setdefault("MPLBACKEND", "Agg")

from sphinx.pycode import ModuleAnalyzer  # noqa: E402

import skadaptive  # noqa: E402

# -- Project -----------------------------------------------------------------
project = "skadaptive"
author = "The skadaptive developers"
copyright = "The skadaptive developers"  # noqa: A001
release = skadaptive.__version__
version = ".".join(release.split(".")[:2])

# -- Extensions --------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]
# No intersphinx: the build must not fetch anything, and an inventory is only
# available by download. References to scikit-learn and numpy objects are shown
# as code without a link.

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "**/.ipynb_checkpoints",
    # sphinx-gallery writes these next to the generated pages; they are
    # downloads, not documents.
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.json",
    "auto_examples/*.codeobj.json",
    "gen_modules/**",
]
default_role = "literal"  # `x` in rst pages is code, as ``x``

# -- autodoc / autosummary ----------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"  # the numpydoc sections say the types
autodoc_member_order = "groupwise"
autodoc_inherit_docstrings = True
toc_object_entries_show_parents = "hide"  # "fit", not "AdaptiveCascadeClassifier.fit"

# -- numpydoc ----------------------------------------------------------------
numpydoc_show_class_members = False  # the class template lists the members
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
# Validation runs on every object the API reference documents (classes,
# functions, and the members those pages show). Each failure is a Sphinx
# warning, so with -W it fails the build.
numpydoc_validation_checks = {
    "GL08",  # the object has no docstring
    "GL06",  # unknown section (numpydoc would drop its content)
    "GL07",  # sections in the wrong order
    "SS01",  # no one-line summary
    "PR01",  # parameters not documented
    "PR02",  # documented parameters that do not exist
    "PR03",  # parameters documented in the wrong order
    "PR10",  # "name: type" instead of "name : type"
    "RT01",  # no Returns section for something that returns
    "EX01",  # no Examples section
}
# EX01 is checked for classes and module-level functions only, not for every
# method and property of a class (see _examples_for_classes_and_functions).
EXAMPLES_REQUIRED_FOR = {"class", "exception", "function"}
# Every documented object is public API: nothing is excluded from validation.
# (scikit-learn's generated set_{method}_request methods are not documented
# at all, see _skip_sklearn_request_methods.)
numpydoc_validation_exclude = set()

# -- MyST (Markdown pages, including docs/user_guide.md) ---------------------
# Headings up to ### get anchors, so that pages link to sections of
# user_guide.md (e.g. user_guide.md#held-out-data-and-why).
myst_heading_anchors = 3

# -- sphinx-gallery ------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(DOCS.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    # "Examples using X" on each API page.
    "doc_module": ("skadaptive",),
    "backreferences_dir": "gen_modules/backreferences",
    "reference_url": {"skadaptive": None},
    "image_scrapers": ("matplotlib",),
    "remove_config_comments": True,
    "show_memory": False,
    "default_thumb_file": None,
    "download_all_examples": False,
    "plot_gallery": "True",
    # No notebooks need a kernel here; a failing example fails the build.
    "only_warn_on_example_error": False,
}

# -- HTML --------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skadaptive {release}"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
}
html_show_sourcelink = True
html_context = {"default_mode": "light"}


# -- Hooks -------------------------------------------------------------------
def _skip_sklearn_request_methods(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated ``set_{method}_request`` methods.

    scikit-learn adds them to every estimator for metadata routing; their
    docstrings are scikit-learn's and refer to its own glossary.
    """
    if re.fullmatch(r"set_[a-z_]+_request", name):
        return True
    return None


def _constant_doc_comments(app, what, name, obj, options, lines):
    """Document a re-exported module constant by its ``#:`` doc comment.

    autodoc reads doc comments only from the module it documents (e.g.
    ``skadaptive/policies/__init__.py``), so a constant defined with a
    ``#:`` comment in a private submodule and imported there gets its type's
    docstring instead (``tuple``'s, ``ndarray``'s). Use the comment where the
    constant is defined; without one, show no docstring, so that numpydoc
    reports the missing summary (SS01) rather than the type's docstring.
    """
    if what != "data":
        return
    modname, attr = name.rsplit(".", 1)
    if ModuleAnalyzer.for_module(modname).find_attr_docs().get(("", attr)):
        return  # autodoc found the comment itself
    for module_name, module in sorted(sys.modules.items()):
        if module_name.startswith(modname + ".") and getattr(module, attr, None) is obj:
            comment = ModuleAnalyzer.for_module(module_name).find_attr_docs()
            if comment.get(("", attr)):
                lines[:] = list(comment[("", attr)])
                return
    lines[:] = []


def _examples_for_classes_and_functions(app, what, name, obj, options, lines):
    """Check EX01 on classes and functions, not on their methods and properties.

    numpydoc applies numpydoc_validation_checks to every object it processes;
    this runs just before its handler and takes EX01 out of the set for
    members.
    """
    if what not in EXAMPLES_REQUIRED_FOR:
        app.config.numpydoc_validation_checks.discard("EX01")


def _restore_examples_check(app, what, name, obj, options, lines):
    """Put EX01 back after numpydoc's handler (the configuration is unchanged)."""
    app.config.numpydoc_validation_checks.add("EX01")


def setup(app):
    app.connect("autodoc-skip-member", _skip_sklearn_request_methods)
    # numpydoc's handler has the default priority, 500.
    app.connect("autodoc-process-docstring", _constant_doc_comments, 400)
    app.connect("autodoc-process-docstring", _examples_for_classes_and_functions, 499)
    app.connect("autodoc-process-docstring", _restore_examples_check, 501)
