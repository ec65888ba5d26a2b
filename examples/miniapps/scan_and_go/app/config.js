// Where the supermarket's backend answers (registered with OMO as the mini program's server).
// `omo demo` and the tests write the real address here when they publish the package.
window.BACKEND = "http://127.0.0.1:8003";
