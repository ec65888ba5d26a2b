// The app's mini programs page: the recently used list and search results open in the app.
import { openLinksInApp } from "./miniapp_launch.js";

openLinksInApp(document.getElementById("main"));
