"""No models: jobctl's tables are jobctl's own (`manage.py migrate` creates them, see apps.py). The module
exists so that Django sends this app `post_migrate`."""
