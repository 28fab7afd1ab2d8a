// The GitHub Action's entry point (bundled into dist/index.js). Work in progress.
import * as core from '@actions/core';

core.setFailed('model-oci action: not built yet');
