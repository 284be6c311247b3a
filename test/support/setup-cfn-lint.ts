import { toolsSetup } from './tools-setup.ts';

export default toolsSetup(['cfn-lint']);
