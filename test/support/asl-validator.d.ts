/** asl-validator 4 ships no type declarations: the part of its API the tests use. */
declare module 'asl-validator' {
  interface AslValidatorOptions {
    checkPaths: boolean;
    checkArn: boolean;
  }
  interface AslValidatorResult {
    isValid: boolean;
    errors: Array<{ 'Error code': string; Message: string }>;
    errorsText: (separator?: string) => string;
  }
  /** Validates a definition; it adds QueryLanguage to every state of what it is given (pass a clone). */
  const validator: (definition: unknown, options?: AslValidatorOptions) => AslValidatorResult;
  export = validator;
}
