// Loaded before RequireJS on pages with widgets. RequireJS reads this object as its
// configuration. The widget manager finds its icon fonts next to its own module's URL, which
// RequireJS derives from the module's name: this maps the name to where the manager is,
// _static/html-manager/, next to this file (on a page at any depth, from file:// too).
var require = {
  paths: {
    "@jupyter-widgets/html-manager/dist": document.currentScript.src.replace(
      /course-widgets\.js(\?.*)?$/,
      "html-manager"
    ),
  },
};
