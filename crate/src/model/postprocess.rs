pub struct DetectOptions; pub struct Detection;
