import { toolsSetup } from './tools-setup.ts';

export default toolsSetup(['moto_server']);
