"""An entry point that cannot be imported."""

raise ImportError("tokenproviders-testplugin: this plugin is broken on purpose")
