package io.engram.operators.session;

import io.engram.schemas.ErrorClass;

/** Input the session operator cannot use; becomes a dead letter of its class. */
final class BadInput extends RuntimeException {
    private static final long serialVersionUID = 1L;

    final ErrorClass errorClass;

    BadInput(ErrorClass errorClass, String message) {
        super(message);
        this.errorClass = errorClass;
    }
}
